"""Training and distillation of split rankers."""
