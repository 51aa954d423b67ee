"""Job specs, scheduling, tasks, artifacts, models and scoring (built with the jobs work)."""
