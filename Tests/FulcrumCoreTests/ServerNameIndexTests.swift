import Testing
import FulcrumCore

@Suite struct ServerNameIndexTests {
    let index = ServerNameIndex(
        names: [["fallback.test"], ["*.example.test", "example.test"], ["api.example.test"], ["API.example.test", "*.Example.test"]],
        defaultIndex: 0)

    @Test func anExactNameIsChosenBeforeTheWildcardThatAlsoCoversIt() {
        #expect(index.certificate(for: "api.example.test") == 2)
        #expect(index.certificate(for: "example.test") == 1)
    }

    @Test func namesCompareWithoutCase() {
        #expect(index.certificate(for: "API.EXAMPLE.TEST") == 2)
        #expect(index.certificate(for: "Www.Example.Test") == 1)
    }

    @Test func aWildcardCoversExactlyOneLeftmostLabel() {
        #expect(index.certificate(for: "www.example.test") == 1)
        #expect(index.certificate(for: "a.b.example.test") == 0)  // two labels: the default
        #expect(index.certificate(for: ".example.test") == 0)  // an empty label is no name
    }

    @Test func theFirstCertificateListedKeepsANameTwoHave() {
        // the fourth certificate repeats the second's wildcard and the third's exact name
        #expect(index.certificate(for: "api.example.test") == 2)
        #expect(index.certificate(for: "www.example.test") == 1)
    }

    @Test func otherNamesAndClientsWithoutSNIGetTheDefaultOrNothing() {
        #expect(index.certificate(for: "other.test") == 0)
        #expect(index.certificate(for: nil) == 0)
        #expect(index.certificate(for: "") == 0)
        let strict = ServerNameIndex(names: [["api.example.test"]], defaultIndex: nil)
        #expect(strict.certificate(for: "other.test") == nil)
        #expect(strict.certificate(for: nil) == nil)
        #expect(strict.certificate(for: "api.example.test") == 0)
    }
}
