"""Feature stores: one layout (docs/store.md) in Zarr v3 or HDF5, behind one writer/reader protocol.

``open_store(path)`` opens either format for reading; writers come from ``superb.registry.STORE_FORMATS``.
"""

from superb.stores.base import FeatureStore, SplitView, find_stores, open_store

__all__ = ["FeatureStore", "SplitView", "find_stores", "open_store"]
