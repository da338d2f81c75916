"""Methods: one module each, registered by name (``create``/``list_methods``)."""
from ovfer.methods.base import METHODS, Method, MethodOutput, create_method, list_methods, register_method

#: timm-style alias: ``ovfer.methods.create("hesp", classnames, cfg)``.
create = create_method

__all__ = ["METHODS", "Method", "MethodOutput", "create", "create_method", "list_methods", "register_method"]
