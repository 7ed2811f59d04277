import Testing
@testable import FulcrumCore

/// The pure parts of static routes: the path under the root, ranges, validators, dates, types.
@Suite struct StaticFilesTests {
    @Test func aPathIsDecodedThenRefusedIfItCouldLeaveTheRootOrConfuseTheFileSystem() throws {
        #expect(try StaticFiles.relativePath("/a/b%20c.txt").get() == "a/b c.txt")
        #expect(try StaticFiles.relativePath("/").get() == "")
        #expect(try StaticFiles.relativePath("/./a//b/").get() == "a/b")
        #expect(StaticFiles.relativePath("/%2e%2e/x") == .failure(.parentSegment))
        #expect(StaticFiles.relativePath("/a/..%2f..%2fx") == .failure(.parentSegment))
        #expect(StaticFiles.relativePath("/a%5c..%5cx") == .failure(.forbiddenByte))
        #expect(StaticFiles.relativePath("/a%00.css") == .failure(.forbiddenByte))
        #expect(StaticFiles.relativePath("/a%0d%0a") == .failure(.forbiddenByte))
        #expect(StaticFiles.relativePath("/a%2") == .failure(.malformedEscape))
        #expect(StaticFiles.relativePath("/a%zz") == .failure(.malformedEscape))
    }

    @Test func rangesAreReadAsRFC9110SaysAndSeveralAreServedWhole() {
        #expect(StaticFiles.range(nil, size: 100) == .whole)
        #expect(StaticFiles.range("bytes=0-9", size: 100) == .part(0...9))
        #expect(StaticFiles.range("bytes=90-", size: 100) == .part(90...99))
        #expect(StaticFiles.range("bytes=90-500", size: 100) == .part(90...99))
        #expect(StaticFiles.range("bytes=-10", size: 100) == .part(90...99))
        #expect(StaticFiles.range("bytes=-500", size: 100) == .part(0...99))
        #expect(StaticFiles.range("bytes=100-", size: 100) == .unsatisfiable)
        #expect(StaticFiles.range("bytes=-0", size: 100) == .unsatisfiable)
        #expect(StaticFiles.range("bytes=0-1,5-6", size: 100) == .whole)
        #expect(StaticFiles.range("bytes=9-1", size: 100) == .whole)
        #expect(StaticFiles.range("items=0-1", size: 100) == .whole)
        #expect(StaticFiles.range("bytes=x-1", size: 100) == .whole)
    }

    @Test func validatorsDecideA304() {
        let tag = StaticFiles.entityTag(size: 20, modified: 1_700_000_000)
        #expect(tag == "\"14-6553f100\"")
        #expect(StaticFiles.notModified(ifNoneMatch: "\"x\", W/\(tag)", ifModifiedSince: nil, tag: tag, modified: 0))
        #expect(StaticFiles.notModified(ifNoneMatch: "*", ifModifiedSince: nil, tag: tag, modified: 0))
        #expect(!StaticFiles.notModified(ifNoneMatch: "\"x\"", ifModifiedSince: "Sun, 06 Nov 2050 08:49:37 GMT", tag: tag, modified: 0))
        #expect(StaticFiles.notModified(ifNoneMatch: nil, ifModifiedSince: "Tue, 14 Nov 2023 22:13:20 GMT", tag: tag, modified: 1_700_000_000))
        #expect(!StaticFiles.notModified(ifNoneMatch: nil, ifModifiedSince: "Tue, 14 Nov 2023 22:13:19 GMT", tag: tag, modified: 1_700_000_000))
        #expect(!StaticFiles.notModified(ifNoneMatch: nil, ifModifiedSince: "yesterday", tag: tag, modified: 0))
    }

    @Test func httpDatesRoundTrip() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        for seconds: Int64 in [0, 784_111_777, 951_782_400, 1_700_000_000, 4_102_444_799] {
            #expect(HTTPDate.parse(HTTPDate.format(seconds)[...]) == seconds)
        }
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
    }

    @Test func mediaTypesComeFromTheExtension() {
        #expect(StaticFiles.mediaType(of: "/x/index.HTML") == "text/html; charset=utf-8")
        #expect(StaticFiles.mediaType(of: "/x/app.mjs") == "text/javascript; charset=utf-8")
        #expect(StaticFiles.mediaType(of: "/x.d/README") == "application/octet-stream")
        #expect(StaticFiles.mediaType(of: "/x/font.woff2") == "font/woff2")
    }
}
