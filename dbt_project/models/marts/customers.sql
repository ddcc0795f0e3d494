with

customers as (

    select * from {{ ref('stg_bank__customers') }}

),

final as (

    select
        customer_id,
        full_name,
        email,
        phone,
        national_id,
        street_address,
        birth_date,
        segment,
        region,
        annual_income,
        credit_score,
        signup_date

    from customers

)

select * from final
