"""Cloud-init user-data for hardened hosts: templates and one pure render function.

Import it as `hardened_do.cloud_init` (the render function is
`hardened_do.cloud_init.render.render_user_data`); from a shell,
`python -m cloud_init render` in a checkout runs the same code.
"""
