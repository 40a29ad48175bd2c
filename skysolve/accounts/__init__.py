"""Sign up, sign in, sign out and the profile page (API key, default licence)."""
