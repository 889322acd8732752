#!/usr/bin/env python3
"""KCL MultiLangDaemon child for wenu-processing (executableName in properties/processing.properties)."""
from wenu_stream.kcl_adapter import main

if __name__ == "__main__":
    main("processing")
