@_exported import BrokerFields
