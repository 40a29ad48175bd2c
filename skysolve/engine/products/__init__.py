"""What a solve leaves: the result files and the pictures."""
