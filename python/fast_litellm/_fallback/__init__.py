"""Pure-Python implementations with the same signatures and answers as the native module."""
