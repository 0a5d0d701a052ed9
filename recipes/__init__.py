"""Built-in recipes, one TOML file each, installed as package data of ``genzoo_infogan.recipes``."""
