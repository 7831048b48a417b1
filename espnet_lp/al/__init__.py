"""Active learning: strategies, selection, round state, oracle, reports."""
