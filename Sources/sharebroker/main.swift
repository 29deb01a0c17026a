print("sharebroker")
