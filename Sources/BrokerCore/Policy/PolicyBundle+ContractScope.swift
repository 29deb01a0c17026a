extension PolicyBundle {
    /// One adapter declaration the contract does not cover: it installs, and its shares are
    /// denied by the usual rules (docs/policy-files.md, the contracts).
    public struct OutOfScope: Sendable, Equatable {
        public let provider: String
        public let line: Int
        /// What is always denied and with which reason, for `check`'s warning.
        public let message: String
    }

    /// Declarations the provider's contract does not allow: an operation's purpose the contract does
    /// not name (always `purpose_out_of_contract`), a personal field category no purpose allows
    /// (always `out_of_contract_scope`), a minimisation whose coarser category no purpose allows
    /// (it never applies). These are warnings, never errors: legal narrows contracts and engineers own
    /// adapters, so a contract that only narrows must install at once (reload, `policy diff`, shadow)
    /// instead of leaving the wider one deciding until a second edit.
    public var outOfContractScope: [OutOfScope] {
        var found: [OutOfScope] = []
        for provider in adapters.keys.sorted() {
            guard let adapter = adapters[provider], let contract = contracts[provider] else { continue }
            for operation in adapter.operations {
                for purpose in operation.purposes where contract.purposes[purpose] == nil {
                    found.append(OutOfScope(provider: provider, line: operation.line, message:
                        "operation \(operation.name): purpose '\(purpose)' is not in the contract: always denied: purpose_out_of_contract"))
                }
                for declaration in operation.declarations {
                    guard let category = declaration.category, taxonomy.categories[category]?.personal == true else { continue }
                    if !contract.allowsForSomePurpose(category) {
                        found.append(OutOfScope(provider: provider, line: declaration.line, message:
                            "operation \(operation.name): field \(declaration.pattern): category '\(category)' is not allowed by any "
                            + "purpose of the contract: always denied: out_of_contract_scope"))
                    } else if let minimise = declaration.minimise, !contract.allowsForSomePurpose(minimise.category) {
                        found.append(OutOfScope(provider: provider, line: minimise.line, message:
                            "operation \(operation.name): field \(declaration.pattern): minimise: category '\(minimise.category)' is "
                            + "not allowed by any purpose of the contract, so it never applies"))
                    }
                }
            }
        }
        return found
    }
}
