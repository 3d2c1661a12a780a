"""RL policy autoresearch: editable train.py, frozen harness, research runner, proposers."""
