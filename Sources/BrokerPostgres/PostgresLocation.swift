import Foundation
import NIOSSL
import PostgresNIO

/// Where the PostgreSQL database is: `postgres://user[:password]@host[:port]/database[?sslmode=…]`
/// (`postgresql://` too). The password may instead come from a secret (`database_password:` in
/// the config), so it need not sit in the URL. `sslmode` is `disable`, `prefer` (the default,
/// as libpq's) or `require`.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode

    public enum SSLMode: String, Sendable, Hashable { case disable, prefer, require }

    /// `nil` when `text` is not a `postgres://` URL with a user, a host and a database.
    public init?(_ text: String) {
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"),
              let url = URLComponents(string: text), let host = url.host, !host.isEmpty,
              let user = url.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else { return nil }
        let database = String(url.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { return nil }
        self.host = host
        self.port = url.port ?? 5432
        self.username = user
        self.password = url.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        self.database = database.removingPercentEncoding ?? database
        var mode = SSLMode.prefer
        for item in url.queryItems ?? [] where item.name == "sslmode" {
            guard let value = item.value.flatMap(SSLMode.init(rawValue:)) else { return nil }
            mode = value
        }
        self.sslMode = mode
    }

    /// The URL without its password, for logs and messages.
    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database)" + (sslMode == .prefer ? "" : "?sslmode=\(sslMode.rawValue)")
    }

    var clientConfiguration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password,
                                                         database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 16
        configuration.options.minimumConnections = 2
        return configuration
    }
}
