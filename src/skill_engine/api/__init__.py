"""The HTTP surface: PhariaEngine's routes, status codes and texts."""
