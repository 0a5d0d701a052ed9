"""Built-in genzoo plugins, installed as ``genzoo_infogan.plugins`` and registered by the host
through the same door as outside plugins."""
