import ArgumentParser
import Hydration

@main
enum HydrationMain {
    static func main() async {
        await HydrationCommand.main()
    }
}
