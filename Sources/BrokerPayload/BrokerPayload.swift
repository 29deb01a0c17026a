// Placeholder until the payload codecs land.
import BrokerFields
