"""Cloud-init user-data for hardened hosts: templates and one pure render function."""

from .render import build_cloud_config, render_user_data

__all__ = ["build_cloud_config", "render_user_data"]
