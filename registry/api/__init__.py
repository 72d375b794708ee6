"""The registry's endpoints: sign-in tokens, organizations, projects (the
shared REST plumbing is the top-level api/ app)."""
