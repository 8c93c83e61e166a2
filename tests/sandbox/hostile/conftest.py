import os

# A host secret the sandbox must never see (set before any pool starts).
os.environ.setdefault("PLUMLINE_HOST_SECRET", "s3cr3t-host-value")
