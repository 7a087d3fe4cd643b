/// Every step, in the order the manual procedure does them. New steps are added here.
public enum StepCatalog {
    public static let all: [any Step] = [
        BasePackagesStep(),
        RaspberryPiCgroupsStep(),
        KernelForwardingStep(),
    ]
}
