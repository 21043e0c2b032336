"""The model-driven stages: S→C (concepts), C→I (tasks) and I→R (attempts)."""
