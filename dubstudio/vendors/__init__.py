"""Engines behind small protocols; each vendor module turns the vendor's errors into ours."""
