"""Image automation's write-back: setter markers rewritten in Git, committed, signed and pushed."""
