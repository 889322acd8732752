#!/usr/bin/env python3
"""KCL MultiLangDaemon child for wenu-alarms (executableName in properties/alarms.properties)."""

from wenu_stream.bootstrap import kcl_main

if __name__ == "__main__":
    kcl_main("alarms")
