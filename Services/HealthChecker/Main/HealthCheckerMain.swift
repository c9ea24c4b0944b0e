import ArgumentParser
import HealthChecker

@main
enum HealthCheckerMain {
    static func main() async {
        await HealthCheckerCommand.main()
    }
}
