"""Piccolo's configuration module (PICCOLO_CONF), used by its migration tool."""

from piccolo.conf.apps import AppRegistry

from gateway.settings import load_settings
from gateway.store.engine import make_engine

DB = make_engine(load_settings())

APP_REGISTRY = AppRegistry(apps=["gateway.store.piccolo_app"])
