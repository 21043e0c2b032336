"""Evaluation of trained models: HumanEval pass@k, executed in the sandbox."""
