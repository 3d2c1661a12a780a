"""LLM tool loop, offline command grammar, MCP server. Only this package imports openai/mcp."""
