"""The actions playbooks can call, one module per AWS service, found without a list.

Every module of this package is imported once, in name order, when the package is: the
classes it `@register`s become available to playbooks under their names. Adding an action
is writing its class, with everything it declares, in its service's module (or a new one).
"""

import importlib
import pkgutil

from chalicelib.actions.base import Action, ActionError, Parameter, UndoRefused, registered_actions

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Action", "ActionError", "Parameter", "UndoRefused", "registered_actions"]
