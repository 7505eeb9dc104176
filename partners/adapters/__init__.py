"""The registry of partner formats: an adapter name -> its class. Add a vendor here."""

from partners.adapters.aftership import AftershipAdapter
from partners.adapters.base import Adapter
from partners.adapters.doordash_drive import DoordashDriveAdapter
from partners.adapters.easypost import EasypostAdapter
from partners.adapters.gophr import GophrAdapter
from partners.adapters.native import CsvAdapter, NativeAdapter
from partners.adapters.onfleet import OnfleetAdapter
from partners.adapters.samsara import SamsaraAdapter
from partners.adapters.stuart import StuartAdapter
from partners.adapters.uber_direct import UberDirectAdapter
from partners.adapters.wolt_drive import WoltDriveAdapter

REGISTRY: dict[str, type[Adapter]] = {
    "native": NativeAdapter,
    "csv": CsvAdapter,
    "onfleet": OnfleetAdapter,
    "doordash_drive": DoordashDriveAdapter,
    "uber_direct": UberDirectAdapter,
    "stuart": StuartAdapter,
    "gophr": GophrAdapter,
    "wolt_drive": WoltDriveAdapter,
    "samsara": SamsaraAdapter,
    "easypost": EasypostAdapter,
    "aftership": AftershipAdapter,
}


def get_adapter(name: str) -> Adapter:
    try:
        return REGISTRY[name]()
    except KeyError:
        raise LookupError(f"unknown adapter {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
