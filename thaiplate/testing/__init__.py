"""Test helpers that ship with the package (bad-input corpus) so TorchServe tests can import them."""
