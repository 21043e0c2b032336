"""The LLM judge: five coding preferences, one call per task and preference (CodeUltraFeedback).

``rubrics`` loads the human-editable rubrics from ``prompts/judge/``; ``prompt``
renders a judge call with the responses in a seeded, recorded order; ``parse`` reads
a judge's answer back into one rating per response, or a reason; ``rate`` judges a
batch of tasks with one engine call (plus one for retries); ``ratings`` holds what
later stages need from a judgment (mean ratings, judge pairs, the ``ratings`` row).
See docs/judge.md.
"""
