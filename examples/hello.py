from baton import flow, task


@task
def hello(name: str):
    print(f"Hello, {name}")


@flow(retries=3)
def say_hello():
    for name in ["Marvin", "Arthur", "Ford"]:
        hello(name)


if __name__ == "__main__":
    say_hello()
