"""Counting the work a split ranker does, and measuring the machine it runs on."""
