@testable import BrokerTesting
import Testing

@Suite struct AMapSimulatorTests {
    @Test func goodRegeoAndIPSucceedAndAreRecorded() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("amap-location")
            let regeo = try await SimulatorHTTP.get(sim, "/v3/geocode/regeo",
                                                    [("key", creds.amapKey), ("location", "116.481488,39.990464"), ("extensions", "base")])
            #expect(regeo.status == 200)
            #expect(regeo["status"] == "1")
            #expect(regeo["infocode"] == "10000")
            #expect(regeo["regeocode"]?["formatted_address"]?.stringValue?.isEmpty == false)
            #expect(regeo["regeocode"]?["addressComponent"]?.isObject == true)

            let ip = try await SimulatorHTTP.get(sim, "/v3/ip", [("key", creds.amapKey), ("ip", "114.247.50.2")])
            #expect(ip["status"] == "1")
            #expect(ip["province"] == "北京市")
            #expect(ip["adcode"] == "110000")

            let recorded = sim.requests()
            #expect(recorded.count == 2)
            #expect(recorded[0].method == "GET" && recorded[0].path == "/v3/geocode/regeo")
            #expect(recorded[0].query == "key=\(creds.amapKey)&location=116.481488%2C39.990464&extensions=base")
            #expect(recorded[0].queryParameter("location") == "116.481488,39.990464")
            #expect(recorded[1].queryParameter("ip") == "114.247.50.2")
            #expect(recorded[0].body.isEmpty)
        }
    }

    @Test func wrongKeyIsRefusedWithInvalidUserKey() async throws {
        try await withSimulators { sims in
            let sim = sims.simulator("amap-location")
            let reply = try await SimulatorHTTP.get(sim, "/v3/geocode/regeo", [("key", "wrong"), ("location", "116.4,39.9")])
            #expect(reply.status == 200)
            #expect(reply["status"] == "0")
            #expect(reply["info"] == "INVALID_USER_KEY")
            #expect(reply["infocode"] == "10001")
            let missing = try await SimulatorHTTP.get(sim, "/v3/ip", [("ip", "114.247.50.2")])
            #expect(missing["infocode"] == "10001")
        }
    }

    @Test(arguments: ["39.9,116.4,1", "116.4", "181,39.9", "116.4,-91", "116.1234567,39.9", "116.4,abc", "116.,39.9", "0x10,39"])
    func invalidLocationIsRefused(location: String) async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let reply = try await SimulatorHTTP.get(sims.simulator("amap-location"), "/v3/geocode/regeo",
                                                    [("key", creds.amapKey), ("location", location)])
            #expect(reply["status"] == "0")
            #expect(reply["info"] == "INVALID_PARAMS")
            #expect(reply["infocode"] == "20000")
        }
    }

    @Test func coordinateBoundsAndIPv4AreChecked() async throws {
        #expect(AMapBehavior.coordinate("-180", limit: 180) == -180)
        #expect(AMapBehavior.coordinate("89.123456", limit: 90) != nil)
        #expect(AMapBehavior.coordinate("90.0000001", limit: 90) == nil)
        #expect(AMapBehavior.ipv4("1.2.3.4") == [1, 2, 3, 4])
        #expect(AMapBehavior.ipv4("1.2.3.256") == nil)
        #expect(AMapBehavior.ipv4("::1") == nil)
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("amap-location")
            #expect(try await SimulatorHTTP.get(sim, "/v3/ip", [("key", creds.amapKey), ("ip", "2001:db8::1")])["infocode"] == "20000")
            #expect(try await SimulatorHTTP.get(sim, "/v3/geocode/regeo", [("key", creds.amapKey)])["infocode"] == "20001")
            let local = try await SimulatorHTTP.get(sim, "/v3/ip", [("key", creds.amapKey)])
            #expect(local["province"] == "局域网")
        }
    }
}
