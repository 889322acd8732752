#!/usr/bin/env python3
"""KCL MultiLangDaemon child for wenu-alarms (executableName in properties/alarms.properties)."""
from wenu_stream.kcl_adapter import main

if __name__ == "__main__":
    main("alarms")
