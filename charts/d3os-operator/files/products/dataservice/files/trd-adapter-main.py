# Default trd-adapter script; supply your own with spec.trd-adapter.files.
import os

EUREKA = os.environ.get("EUREKA_CLIENT_SERVICEURL_DEFAULTZONE", "")


def main() -> None:
    print("trd-adapter script ready; eureka:", EUREKA)


if __name__ == "__main__":
    main()
