

def version() -> str:
    """The installed package's version (``ebok-worker --version``, ``ebok_worker_build_info``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("ebok-worker")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "unknown"
