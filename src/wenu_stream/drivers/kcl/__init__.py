"""The KCL MultiLangDaemon driver: the amazon-kclpy protocol adapter and the properties files."""
