"""Package list for setuptools; everything else is in pyproject.toml.

templates/, static/ and migrations/ sit beside the package in a checkout and are carried inside
it in a wheel (see [tool.setuptools.package-dir]); find_packages cannot see them, so they are
named here.
"""

from setuptools import find_packages, setup

ASSET_DIRS = ["contentops.templates", "contentops.static", "contentops.migrations"]

setup(packages=find_packages(include=["contentops", "contentops.*"]) + ASSET_DIRS)
