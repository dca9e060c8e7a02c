import ArgumentParser
import Foundation

/// Runs a stage body; any error becomes one line on stderr and a non-zero exit, as every stage promises.
public func runReportingFailure(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ValidationError {
        throw error
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
