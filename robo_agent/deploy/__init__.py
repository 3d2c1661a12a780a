"""Deploy: `robo-agent deploy` (run an artifact on an arm) and `robo-agent rehearse` (the gate)."""
