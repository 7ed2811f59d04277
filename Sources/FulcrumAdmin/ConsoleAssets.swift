/// The web console's files, compiled into the binary (SwiftPM `embedInCode`), served by the admin
/// listener without a token: they hold no data; everything they show comes from the API.
enum ConsoleAssets {
    struct Asset {
        let contentType: String
        let bytes: [UInt8]
    }

    /// The asset at `path`, or `nil` when the path is not the console's.
    static func asset(for path: String) -> Asset? {
        switch path {
        case "/console", "/console/", "/console/index.html":
            return Asset(contentType: "text/html; charset=utf-8", bytes: PackageResources.index_html)
        case "/console/console.js":
            return Asset(contentType: "text/javascript; charset=utf-8", bytes: PackageResources.console_js)
        case "/console/console.css":
            return Asset(contentType: "text/css; charset=utf-8", bytes: PackageResources.console_css)
        case "/console/favicon.svg", "/favicon.ico":  // browsers ask for /favicon.ico by themselves
            return Asset(contentType: "image/svg+xml", bytes: PackageResources.favicon_svg)
        default:
            return nil
        }
    }

    /// Headers that keep the console to its own files: no inline script, no framing, no referrer.
    static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-cache"),
    ]
}
