#!/usr/bin/env python3
"""KCL MultiLangDaemon child for wenu-processing (executableName in properties/processing.properties)."""

from wenu_stream.bootstrap import kcl_main

if __name__ == "__main__":
    kcl_main("processing")
