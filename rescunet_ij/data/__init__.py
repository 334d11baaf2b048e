"""Training data: window geometry, training-set folders, the torch dataset."""
