"""RQ entry points: a few lines each, taking ids and primitives and calling app/."""
