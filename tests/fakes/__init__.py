"""Small real stand-ins for outside services, run over loopback in tests."""
