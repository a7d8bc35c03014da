"""MLTrain Desktop."""
