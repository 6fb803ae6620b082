"""Pure statistics for the profit autopilot: posteriors, CUPED, confidence sequences, SRM, power."""
